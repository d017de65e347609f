//! The two directories workers use, made ready for sandboxed workers before
//! the first one starts.
//!
//! Both become absolute, canonical paths (a worker's mount namespace
//! rebuilds them at the same paths, and its working directory is not the
//! host's). When workers drop to an unprivileged uid:
//! - the compile cache stays root's, readable (and its directories
//!   traversable) by the workers' group only, writable by nobody but the
//!   host: an escaped guest cannot plant an artifact;
//! - the data root stays root's (0755): a worker can neither create nor
//!   rename entries in it, so it cannot swap the plugin store, the quota
//!   images or another tenant's directory. Each namespace's directory (and
//!   everything in it) belongs to the workers' uid and gid, so a guest can
//!   write its own (the host, as root, still reads and writes all of it);
//!   the host creates it before the namespace's first call
//!   ([`namespace_dir`]). Entries owned by anyone else (data written by
//!   workers that ran as root before) are handed over once here. Entries
//!   whose name starts with `.` (the cache, the plugin store, the quota
//!   images) are the host's and never handed over.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sandbox::{PluginError, SandboxConfig};

/// Readable and traversable by the owner and the group.
const CACHE_DIR_MODE: u32 = 0o750;

fn failure(path: &Path) -> impl FnOnce(io::Error) -> PluginError {
    let path = path.to_owned();
    move |source| PluginError::Cache { path, source }
}

/// Creates and canonicalises `sandbox`'s directories.
pub(crate) fn absolutize(sandbox: &mut SandboxConfig) -> Result<(), PluginError> {
    sandbox.cache_dir = absolute(&sandbox.cache_dir).map_err(failure(&sandbox.cache_dir))?;
    sandbox.data_dir = absolute(&sandbox.data_dir).map_err(failure(&sandbox.data_dir))?;
    Ok(())
}

/// Hands the directories to `identity` (uid, gid), the workers' (see the
/// module doc); after the compile cache created its engine directory.
pub(crate) fn share(sandbox: &SandboxConfig, identity: Option<(u32, u32)>) -> Result<(), PluginError> {
    if let Some((uid, gid)) = identity {
        hand_over(&sandbox.data_dir, uid, gid).map_err(failure(&sandbox.data_dir))?;
        share_cache(&sandbox.cache_dir, gid).map_err(failure(&sandbox.cache_dir))?;
    }
    Ok(())
}

fn absolute(path: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(path)?;
    std::fs::canonicalize(path)
}

/// The cache root and its engine directories: owner root, group `gid`,
/// mode 0750. Artifact files are written 0644 (`CompileCache`).
fn share_cache(root: &Path, gid: u32) -> io::Result<()> {
    let mut dirs = vec![root.to_owned()];
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    for dir in dirs {
        std::os::unix::fs::chown(&dir, Some(0), Some(gid))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(CACHE_DIR_MODE))?;
    }
    Ok(())
}

/// The data root root's and 0755; every namespace directory in it, and
/// everything in those, owned by `uid`:`gid`, without following symbolic
/// links. Names starting with `.` are the host's.
fn hand_over(root: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(root, Some(0), Some(0))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    let mut pending = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            pending.push(entry.path());
        }
    }
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// Creates `namespace`'s directory in `data_root` if missing, owned by
/// `identity` (the workers' uid and gid) when workers drop to one: workers
/// cannot create entries in the root-owned data root themselves.
pub(crate) fn namespace_dir(
    data_root: &Path,
    namespace: &crate::names::Namespace,
    identity: Option<(u32, u32)>,
) -> io::Result<()> {
    let dir = data_root.join(namespace.as_str());
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if !std::fs::symlink_metadata(&dir)?.is_dir() {
                return Err(io::Error::other(format!(
                    "{} exists and is not a directory",
                    dir.display()
                )));
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    if let Some((uid, gid)) = identity {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    Ok(())
}
