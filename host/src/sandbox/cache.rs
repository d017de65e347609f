//! The compile cache: precompiled components on disk, keyed by the sha256 of
//! the upload and the engine's compatibility hash.
//!
//! The host compiles each plugin once; every worker then maps the artifact
//! with `Component::deserialize_file` instead of compiling again. Artifacts
//! are native code that is loaded without validation, so the directory is
//! writable by the host's user only (0700); entries are written to a
//! temporary name and linked (or renamed) into place, so a reader never sees
//! a partial file, and an artifact already in place with the same bytes is
//! kept rather than swapped for a copy. Beside
//! each artifact `<sha>.cwasm` the cache keeps `<sha>.sha256`, the digest of
//! the artifact itself: an entry is used again only when the artifact still
//! has that digest, so a damaged or replaced file is compiled again rather
//! than loaded.

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
    /// Opens (creating) the cache directory for the engine of `config`
    /// under its `cache_dir`.
    pub(crate) fn for_config(config: &super::SandboxConfig) -> io::Result<Self> {
        let engine = super::engine::build_engine(config, super::engine::Purpose::Compile).map_err(io::Error::other)?;
        Self::open(&config.cache_dir, &engine)
    }

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

    /// The artifact's own digest file.
    fn digest_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{}.sha256", hex::encode(digest)))
    }

    /// Writes `bytes` to `path` atomically (a unique temporary name, then a
    /// rename). With `keep` (the bytes' digest), a file already at `path`
    /// with that digest is kept, whoever put it there in between: the new
    /// name is linked only where none exists, so a reader's file is never
    /// swapped for a copy of itself.
    fn write_atomically(&self, path: &Path, bytes: &[u8], keep: Option<&Sha256Digest>) -> io::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
        let tmp = self.dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // 0644 whatever the umask: sandboxed workers read artifacts through
        // their group's access to the directory (`supervisor::dirs`).
        let written = std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)))
            .and_then(|()| match keep {
                None => std::fs::rename(&tmp, path),
                Some(own) => match std::fs::hard_link(&tmp, path) {
                    Ok(()) => std::fs::remove_file(&tmp),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        if std::fs::read(path).is_ok_and(|existing| sha256(&existing) == *own) {
                            std::fs::remove_file(&tmp)
                        } else {
                            // Stale or damaged: replaced.
                            std::fs::rename(&tmp, path)
                        }
                    }
                    // A filesystem without hard links: a plain rename, as
                    // before.
                    Err(_) => std::fs::rename(&tmp, path),
                },
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Stores `artifact` for `digest` atomically, then its own digest, and
    /// returns its path and that digest. An entry that already holds these
    /// very bytes (another process compiled the same upload meanwhile) is
    /// kept, not replaced: a reader may be mapping it, and a loader refuses
    /// a file replaced under it.
    pub(crate) fn store(&self, digest: &Sha256Digest, artifact: &[u8]) -> io::Result<(PathBuf, Sha256Digest)> {
        let path = self.path(digest);
        let own = sha256(artifact);
        self.write_atomically(&path, artifact, Some(&own))?;
        self.write_atomically(&self.digest_path(digest), hex::encode(own).as_bytes(), None)?;
        Ok((path, own))
    }

    /// The artifact for `digest` and its own digest, if the cache has it and
    /// it still has the digest recorded when it was stored.
    pub(crate) fn lookup(&self, digest: &Sha256Digest) -> Option<(PathBuf, Sha256Digest)> {
        let recorded = std::fs::read_to_string(self.digest_path(digest)).ok()?;
        let path = self.path(digest);
        let own = sha256(&std::fs::read(&path).ok()?);
        if hex::encode(own) != recorded.trim() {
            tracing::warn!(
                "compile cache: {} does not have the digest recorded when it was stored \
                 (changed on disk); it is not used and will be compiled again",
                path.display()
            );
            return None;
        }
        Some((path, own))
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
        assert_eq!(cache.lookup(&digest), None, "nothing stored yet");
        let (path, own) = cache.store(&digest, b"artifact").unwrap();
        assert_eq!(own, sha256(b"artifact"));
        assert_eq!(std::fs::read(&path).unwrap(), b"artifact");
        let mut leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        leftovers.sort();
        let name = hex::encode(digest);
        assert_eq!(
            leftovers,
            [format!("{name}.cwasm"), format!("{name}.sha256")],
            "temporary files left behind"
        );
        assert_eq!(cache.lookup(&digest), Some((path.clone(), own)));
    }

    #[test]
    fn a_changed_artifact_is_not_used_again() {
        let root = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(root.path(), &Engine::default()).unwrap();
        let digest = sha256(b"plugin");
        let (path, own) = cache.store(&digest, b"artifact").unwrap();
        assert_eq!(own, sha256(b"artifact"));
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(cache.lookup(&digest), None);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(cache.lookup(&digest), None, "a missing artifact is no entry");
    }

    #[test]
    fn storing_the_same_artifact_again_keeps_the_file_a_reader_may_be_mapping() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(root.path(), &Engine::default()).unwrap();
        let digest = sha256(b"plugin");
        let (path, _) = cache.store(&digest, b"artifact").unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        // A concurrent compile of the same upload stores the same bytes.
        let (again, own) = cache.store(&digest, b"artifact").unwrap();
        assert_eq!(again, path);
        assert_eq!(own, sha256(b"artifact"));
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "not swapped for a copy");
        // A damaged entry is replaced.
        std::fs::write(&path, b"damaged").unwrap();
        cache.store(&digest, b"artifact").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"artifact");
        assert_eq!(cache.lookup(&digest), Some((path.clone(), own)));
        let leftovers = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }
}
